"""Executors: where jobs run (serial, threads, local processes, dask.distributed).

They are generic: a job is anything with ``uid``, ``label``, ``resources``, ``retries``,
``preflight()`` and ``job(store, memory, keep_values) -> TaskOutcome`` (the runner hands them
:class:`physflow.pipeline.task.Task` objects). Executors never import the graph, the plan or the
runner; out-of-process executors send the pickled job and receive the small outcome back.
"""
