"""The data half of the method: task sources, templates, the task catalog and mixtures."""
