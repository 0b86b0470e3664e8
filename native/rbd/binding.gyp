# The in-process librbd fast path of Cairn's rbd driver. Built by scripts/build-native.mjs (not by
# npm install: there is deliberately no binding.gyp at the repository root), against Debian's
# librbd-dev and librados-dev, into build/Release/cairn_rbd.node.
{
  "targets": [
    {
      "target_name": "cairn_rbd",
      "sources": [
        "src/addon.c",
        "src/cluster.c",
        "src/errors.c",
        "src/handles.c",
        "src/image.c",
        "src/io.c",
        "src/lists.c",
        "src/op.c",
        "src/snap.c",
        "src/trash.c",
        "src/util.c"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lrbd", "-lrados"]
    }
  ]
}
