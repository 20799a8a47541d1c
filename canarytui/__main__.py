from canarytui.cli import main

raise SystemExit(main())
