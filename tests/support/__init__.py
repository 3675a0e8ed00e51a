"""Helpers the tests share: real servers on 127.0.0.1 (`servers`), the fault-injecting
proxy (`faultproxy`), upload and validate runs (`uploadkit`, `validate_kit`), a
pseudo-terminal screen (`ptyscreen`), Freeplay records, and the weave SDK program."""
