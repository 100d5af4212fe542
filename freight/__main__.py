from freight.cli import main

raise SystemExit(main())
