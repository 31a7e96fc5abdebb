import sys

from enrichment_ai.cli import main

sys.exit(main())
