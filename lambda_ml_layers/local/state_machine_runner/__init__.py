"""A local Step Functions runner: the template's state machine executed for real, each Lambda
task invoked in the project's sandbox against the local moto server (stock moto's
StartExecution runs no Lambda task; DESIGN.md section 3).

    json_paths.py           JSONPath as Amazon States Language uses it (the subset the template needs)
    choice_rules.py         Choice rules: comparisons, IsPresent, And/Or/Not
    definition.py           the definition checked before anything runs (one error, every problem)
    failures.py             a state's failure: error name and cause, the States.* names
    history.py              the execution's result and its event history
    retries.py              Retry and Catch: which rule matches an error, how long to wait
    interpreter.py          runs the states (Task, Choice, Map, Pass, Succeed, Fail) over an injected invoke
    map_state.py            inline Map: iterations on a thread pool, MaxConcurrency, results in item order
    template_definition.py  PipelineStateMachine's definition from infra/template.yaml, substitutions filled
    sandbox_invoker.py      invoke(logical id, payload) through a capped pool of LambdaSandboxes
    local_pipeline.py       the functions' resources in moto (model, card history) and one run of a batch
"""
