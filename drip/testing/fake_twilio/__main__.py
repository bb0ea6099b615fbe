"""``python -m drip.testing.fake_twilio --port 8099``: serve until interrupted."""

from drip.testing.fake_twilio.cli import main

raise SystemExit(main())
