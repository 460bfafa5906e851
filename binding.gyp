{
  "targets": [
    {
      "target_name": "trellis",
      "sources": [
        "native/addon.cc",
        "native/allocator.cc",
        "native/checksum.cc",
        "native/errors.cc",
        "native/fd-passing.cc",
        "native/file-lock.cc",
        "native/mapping.cc",
        "native/segment.cc"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "TRELLIS_HAVE_V8"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": [
        "-std=c++17", "-Wall", "-Wextra", "-Wshadow", "-Wno-unused-parameter",
        "-isystem", "<!(node -p \"require('path').resolve(require('node-addon-api').include_dir)\")"
      ]
    }
  ]
}
