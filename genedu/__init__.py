"""genedu: the package behind the course on generative models.

Import what a chapter needs: ``from genedu import data, train, viz``. Nothing runs at
import time: no downloads, no argument parsing, no globals read.
"""

__version__ = "0.1.0"
