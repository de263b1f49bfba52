"""``python -m chatft fit|validate|test|predict --config configs/demo.yaml``."""

from chatft.cli import main

if __name__ == "__main__":
    main()
