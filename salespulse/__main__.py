from salespulse.cli import main

raise SystemExit(main())
