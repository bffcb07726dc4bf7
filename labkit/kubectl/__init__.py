"""`labkit kubectl`: kubectl's command lines on either backend.

On Kind the real kubectl runs, aimed at the lab's context (:mod:`.kind`). On the sandbox the
same command line is served from the lab's objects (:mod:`.serve`): the read verbs ``get``
(:mod:`.get`) and ``describe`` (:mod:`.describe`), parsed by :mod:`.args` against the resource
types of :mod:`.resources`, printed by :mod:`labkit.printers`; and the write verbs of
:mod:`.writeverbs` (``apply``, ``create``, ``delete``, ``expose``, ``patch``, ``scale``,
``label``, ``cluster-info``, ``api-resources``), each in its own module, writing through the Lab
seam. A verb or flag the sandbox does not serve is refused in one line naming the nearest one it
does; nothing is made up.
"""
