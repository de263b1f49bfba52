"""The tracker's fit, then validate and test of the last checkpoint, in one process group; rank 0 dumps metrics.

    python tests/dst_ddp_run.py OUT.json --config configs/woz.yaml --config configs/ddp-cpu.yaml ...

Used by ``tests/test_dst_model.py`` (as ``tests/ddp_run.py`` is by the NLU DDP test).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    from chatft.training.lightning_cli import close_process_group
    from chatft.training.tracker_cli import tracker_cli

    out, args = Path(argv[0]), argv[1:]
    cli = tracker_cli(args, run=False)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    trainer.fit(model, datamodule=data)
    last = trainer.checkpoint_callback.last_model_path
    (val,) = trainer.validate(model, datamodule=data, ckpt_path=last, verbose=False)
    (test,) = trainer.test(model, datamodule=data, ckpt_path=last, verbose=False)
    result = {
        "world_size": trainer.world_size,
        "last": last,
        "val": val,
        "test": test,
        "log_dir": trainer.log_dir,
    }
    if trainer.is_global_zero:
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    close_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
