"""The few file operations a job's driver does on its output directory itself (the output marker,
moving side tables into place, run summaries), beside the data that Spark writes there.

:func:`output_dir` gives a :class:`LocalDir` for a local path (plain Python, no Spark needed) and a
:class:`HadoopDir` for a URI (``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``, ``file://``), which
works through the Hadoop file systems of the Spark session, with the same configuration (and
credentials) as Spark's own writers. Both take paths relative to the directory, ``/``-separated.
"""
from __future__ import annotations

import os
import shutil


def is_uri(path: str) -> bool:
    return "://" in os.fspath(path)


def spark_path(path) -> str:
    """A path as Spark is to be given it: a URI as it is, a local path as a ``file:`` URI. Spark
    resolves a bare path against the cluster's default file system (HDFS on YARN), not against the
    disk that the driver and executors share, where the jobs' outputs live (README "Paths")."""
    p = os.fspath(path)
    return p if is_uri(p) else "file://" + os.path.abspath(p)


class LocalDir:
    """An output directory on a local (or mounted) file system."""

    def __init__(self, root):
        self.root = os.path.abspath(os.fspath(root))

    def path(self, rel: str = "") -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def spark(self, rel: str = "") -> str:
        """The path as Spark is to be given it (a bare path would be the cluster's default file system)."""
        return spark_path(self.path(rel))

    def exists(self, rel: str = "") -> bool:
        return os.path.exists(self.path(rel))

    def is_dir(self, rel: str = "") -> bool:
        return os.path.isdir(self.path(rel))

    def listdir(self, rel: str = "") -> list[str]:
        p = self.path(rel)
        return sorted(os.listdir(p)) if os.path.isdir(p) else []

    def mkdirs(self, rel: str = "") -> None:
        os.makedirs(self.path(rel), exist_ok=True)

    def write_bytes(self, rel: str, data: bytes) -> None:
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        with open(self.path(rel), "wb") as f:
            f.write(data)

    def delete(self, rel: str) -> None:
        """Remove a file or a directory tree; nothing there is no error."""
        p = self.path(rel)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.lexists(p):
            os.remove(p)

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst`` (which must not exist), making ``dst``'s parent."""
        os.makedirs(os.path.dirname(self.path(dst)), exist_ok=True)
        os.replace(self.path(src), self.path(dst))


class HadoopDir:
    """An output directory behind a URI, through the Spark session's Hadoop file systems."""

    def __init__(self, spark, root: str):
        self.root = os.fspath(root).rstrip("/")
        jvm = spark._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        # the session's Hadoop configuration, runtime settings included (fs.s3a.* set with spark.conf)
        conf = spark._jsparkSession.sessionState().newHadoopConf()
        self._fs = self._Path(self.root).getFileSystem(conf)

    def path(self, rel: str = "") -> str:
        return f"{self.root}/{rel}" if rel else self.root

    spark = path

    def _p(self, rel: str):
        return self._Path(self.path(rel))

    def exists(self, rel: str = "") -> bool:
        return bool(self._fs.exists(self._p(rel)))

    def is_dir(self, rel: str = "") -> bool:
        from py4j.protocol import Py4JJavaError

        try:  # one request (an object store's round trip), not exists() and then the status
            return bool(self._fs.getFileStatus(self._p(rel)).isDirectory())
        except Py4JJavaError as e:
            if e.java_exception.getClass().getName() == "java.io.FileNotFoundException":
                return False
            raise

    def listdir(self, rel: str = "") -> list[str]:
        if not self.is_dir(rel):
            return []
        return sorted(str(s.getPath().getName()) for s in self._fs.listStatus(self._p(rel)))

    def mkdirs(self, rel: str = "") -> None:
        self._fs.mkdirs(self._p(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        out = self._fs.create(self._p(rel), True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()

    def delete(self, rel: str) -> None:
        if self.exists(rel):
            self._fs.delete(self._p(rel), True)

    def rename(self, src: str, dst: str) -> None:
        self._fs.mkdirs(self._p(dst).getParent())
        if not self._fs.rename(self._p(src), self._p(dst)):
            raise OSError(f"could not move {self.path(src)} to {self.path(dst)}")


def output_dir(path, spark=None) -> LocalDir | HadoopDir:
    """The output directory ``path``: a URI needs the Spark session (its Hadoop file systems)."""
    if not is_uri(path):
        return LocalDir(path)
    if spark is None:
        raise ValueError(f"{path}: an output URI is reached through a Spark session")
    return HadoopDir(spark, path)
