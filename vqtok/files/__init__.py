"""The files vqtok reads and writes: model files (:mod:`.model`), code files (:mod:`.codes`), training
checkpoints (:mod:`.checkpoint`), and the atomic write every output goes through (:mod:`.atomic`)."""
