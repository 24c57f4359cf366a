import sys

from reconsolidate.cli import main

sys.exit(main())
