"""`python -m tracecli` runs the same CLI as the console script.

The `exec` at the end works around a CPython quirk that only `-m` meets: a Ctrl-C that lands
while code made by `exec` of a string runs (dataclasses and other libraries build methods
so, at import) sets the interpreter's "unhandled KeyboardInterrupt" mark, and nothing but
the next `exec` of a string clears it. tracecli handles that Ctrl-C (one line, exit 130),
but `python -m` then ended the process by SIGINT (-2) instead. An `exec` of a string on the
way out clears the mark; a KeyboardInterrupt that really escapes still sets it again.
"""

try:
    from tracecli.cli import main  # (a Ctrl-C while it imports: exit 130, see tracecli.cli)

    main()
finally:
    exec("None")  # (see the docstring)
