"""The tick: ``loop`` visits each repo; ``idle``, ``facts``, ``decide`` (pure), ``effects``, ``failures``, ``dryrun``."""
