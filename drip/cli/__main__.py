"""``python -m drip.cli``: the same as the ``drip`` console script."""

from drip.cli import main

main()
