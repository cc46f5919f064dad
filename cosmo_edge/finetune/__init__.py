"""On-device learning: labels in, a better model out, never a worse one (docs/learning.md).

- ``trigger.RoundTrigger``: N new labeled windows, or every T minutes if at least one is new;
- ``round.run_round``: Cosmo stage 2 from the active model on the stored labels, on a copy;
- ``promotion``: the fixed held-out split and the promotion rule;
- ``registry.ModelRegistry``: versions, atomic ``active`` pointer, history, rollback;
- ``worker``: the round in a niced, parent-bound worker process;
- ``service.FinetuneService``: the background thread that ties them to the running daemon.
"""
