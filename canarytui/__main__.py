"""`python -m canarytui`: the same command line as `canarytui`."""

from canarytui.cli import main

raise SystemExit(main())
