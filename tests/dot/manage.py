#!/usr/bin/env python
"""The test provider's manage.py (the environment variables of dot_project.settings are needed)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dot_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
