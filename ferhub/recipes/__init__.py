"""The training recipes that ship with ferhub: one module per seed paper and ferhub's own best recipe.

Each module defines ``RECIPE`` (the settings of :class:`ferhub.training.TrainConfig`) and ``VARIANTS`` (name
-> the settings it changes, with a one-line ``description``). ``ferhub train --recipe NAME --list-variants``
lists them; ``train/README.md`` maps every row of each paper's results table to its command.
"""
