"""The tick: ``loop`` visits each repo; ``idle``, ``facts``, ``decide`` (pure), ``outcomes``,
``bookkeeping``, ``effects``, ``failures`` and ``dryrun`` are its parts."""
