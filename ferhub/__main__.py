import sys

from ferhub.cli import main

sys.exit(main())
