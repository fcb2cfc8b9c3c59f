"""``python -m dataworth.cli``."""

from dataworth.cli import main

main()
