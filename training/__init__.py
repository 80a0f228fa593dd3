"""Fine-tune a BERT checkpoint on labelled tweets and export a model artifact."""
