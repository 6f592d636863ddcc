"""``python -m genedu ...`` is the ``genedu`` command; torchrun launches it as
``torchrun --nproc-per-node N -m genedu train ...``."""

import sys

from .cli import main

sys.exit(main())
