"""Campaign and account YAML: loading with located errors, and lint.

- ``loader``: ``load_campaign``, ``load_campaigns`` -> ``LoadResult``.
- ``account_file``: ``load_account`` for ``campaigns/account.yaml``.
- ``lint``: ``lint_paths`` -> ``LintReport`` (errors and warnings, ``summary()``).
- ``yamlsource``: the positioned YAML reader they share.

Every problem reads ``path:line:col: error: message`` (or ``warning:``).
"""
