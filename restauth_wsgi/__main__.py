"""``python -m restauth_wsgi`` is the ``restauth`` command."""

import sys

from restauth_wsgi.cli import main

sys.exit(main())
