"""``python -m lstm_cli`` runs the ``lstm-cell`` command line."""

from .cli import main

if __name__ == "__main__":
    main()
