"""Fault injection for worker tests; imported at start-up only by processes started with
this folder on PYTHONPATH (tests/reliability/test_worker_failures.py).

With ``FAULT_POISON_MARKER`` set, a process that is asked to analyse a text containing
the marker dies at once with SIGKILL, as the kernel's OOM killer or a segfaulting native
library would kill it: a real process death, no exception the code could catch.
"""

import os

_MARKER = os.environ.get("FAULT_POISON_MARKER")

if _MARKER:
    import signal

    from enrichment_ai import pipeline

    _enrich_batch = pipeline.Enricher.enrich_batch

    def _poisoned_enrich_batch(self, texts, *args, **kwargs):
        if any(_MARKER in (t or "") for t in texts):
            os.kill(os.getpid(), signal.SIGKILL)
        return _enrich_batch(self, texts, *args, **kwargs)

    pipeline.Enricher.enrich_batch = _poisoned_enrich_batch
