"""fit, then validate and test the last checkpoint, in one process group; rank 0 dumps exact metrics to JSON.

    python tests/ddp_run.py OUT.json --config configs/demo.yaml --config configs/ddp-cpu.yaml ...

Used by ``tests/test_ddp.py``. The options are chatft's (no subcommand); with ``strategy: ddp`` Lightning's
subprocess launcher starts this script once more per extra rank, so three stages cost one interpreter start
per rank instead of one per rank and stage. ``OUT.json`` holds the last checkpoint, the validate and test
metrics as Python floats (exact: JSON round-trips them), the test report's log folder and the world size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    from chatft.training.lightning_cli import close_process_group, lightning_cli

    out, args = Path(argv[0]), argv[1:]
    cli = lightning_cli(args, run=False)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    trainer.fit(model, datamodule=data)
    last = trainer.checkpoint_callback.last_model_path
    (val,) = trainer.validate(model, datamodule=data, ckpt_path=last, verbose=False)
    (test,) = trainer.test(model, datamodule=data, ckpt_path=last, verbose=False)
    result = {
        "world_size": trainer.world_size,
        "last": last,
        "global_step": trainer.global_step,
        "val": val,
        "test": test,
        "test_log_dir": trainer.log_dir,
    }
    if trainer.is_global_zero:
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    close_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
