"""`python -m marginlab ...`: the headless command line (see marginlab.cli)."""

from marginlab.cli import main

raise SystemExit(main())
