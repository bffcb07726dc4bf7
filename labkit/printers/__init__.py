"""kubectl's printers, pure: table columns and cells, ages, jsonpath and describe text, read
from Kubernetes-shaped dicts.

The column definitions and cell formats follow kubernetes ``pkg/printers/internalversion``
(``printers.go``) and kubectl's describers; the code is ours. ``labkit kubectl`` (the
``labkit.kubectl`` front end) and ``labkit status`` both print through here, so they cannot
drift apart.
"""
