from copyflow.cli import main

raise SystemExit(main())
