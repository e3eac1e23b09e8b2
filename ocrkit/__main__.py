import sys

from ocrkit.cli import main

sys.exit(main())
