"""Running the jobs on a real Spark cluster: :mod:`cluster.package` builds what a cluster needs (the
project as a ``--py-files`` zip, the Python environment as a relocatable archive, the model as an
archive) and prints the ``spark-submit`` line; :mod:`cluster.standalone` starts a Spark standalone
master and two workers on this machine, submits the scoring job to it the way a cluster runs it,
checks the output and stops everything again.

Nothing here is imported by the jobs: executors never need this package.
"""
