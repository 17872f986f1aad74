{
  "targets": [
    {
      "target_name": "clonefile",
      "sources": ["src/native/binding.c", "src/native/jobs.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS=='linux'", { "sources": ["src/native/linux.c", "src/native/posix.c"] }],
        ["OS=='mac'", {
          "sources": ["src/native/mac.c", "src/native/posix.c"],
          "xcode_settings": {
            "OTHER_CFLAGS": ["-Wall", "-Wextra", "-Werror", "-O2"],
            "MACOSX_DEPLOYMENT_TARGET": "10.13"
          }
        }],
        ["OS=='win'", { "sources": ["src/native/win.c"] }]
      ]
    }
  ]
}
