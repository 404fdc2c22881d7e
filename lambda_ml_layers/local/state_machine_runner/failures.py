"""A state's failure while the execution runs: an error name and a cause, as Step Functions
reports them. Not a LayerToolError: a failed execution is a result (status FAILED), not a crash."""

from __future__ import annotations

# Names Step Functions itself uses; the rest come from the Lambda functions (their errorType).
ALL = "States.ALL"
RUNTIME = "States.Runtime"  # a path that matches nothing and the like: not caught, not retried
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"


class StatesFailure(Exception):
    """Raised by a state (or by an injected invoke for a function error) to fail it."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause
