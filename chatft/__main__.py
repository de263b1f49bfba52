"""``python -m chatft COMMAND [--config FILE] [OPTIONS]`` (and the ``chatft`` console script); see :mod:`chatft.cli`."""

from chatft.cli import main as _main


def main() -> None:
    """Run the command; a command that returns an int (``serve``) sets the exit status with it."""
    result = _main()
    raise SystemExit(result if isinstance(result, int) and not isinstance(result, bool) else 0)


if __name__ == "__main__":
    main()
