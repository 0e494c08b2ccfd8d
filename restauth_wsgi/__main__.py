"""``python -m restauth_wsgi`` is the ``restauth`` command."""

import sys

from .cli import main

sys.exit(main())
