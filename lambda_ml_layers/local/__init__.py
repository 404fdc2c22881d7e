"""What stands in for AWS on this machine: the Lambda-like sandbox, the moto server, the pipeline's
local resources, the model training, and the state machine run through the sandboxes."""
