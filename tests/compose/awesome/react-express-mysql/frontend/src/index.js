// stand-in (tests/compose/awesome/README.md)
