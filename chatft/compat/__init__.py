"""Every place where chatft relies on a framework's private API, one module per framework.

Lightning, torchmetrics and jsonargparse do not promise to keep their private methods and attributes
(names starting with ``_``), yet a few of chatft's features need them. Each such use is written once, here,
behind a name of chatft's own, and ``tests/test_compat.py`` checks each one (that it exists, with the
signature chatft calls, and, where cheap, that it still does what chatft relies on), so a release that
changes one fails a named test instead of silently changing training. The version pins in
``pyproject.toml`` name the same hooks.

* :mod:`chatft.compat.jsonargparse_hooks`: the CLI's one-line errors (torch-free, like :mod:`chatft.cli`).
* :mod:`chatft.compat.lightning_hooks`: checkpoint writing, early stopping, the weight average, LightningCLI
  internals, loop progress.
* :mod:`chatft.compat.torchmetrics_hooks`: reading synced metric states.

Nothing outside this package may name a private attribute of these frameworks.
"""
