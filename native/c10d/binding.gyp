{
  "targets": [
    {
      "target_name": "noduleseg_c10d",
      "sources": ["c10d.cc"],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node ../../scripts/find-libtorch.mjs include)"
      ],
      "defines": [
        "NAPI_CPP_EXCEPTIONS",
        "USE_C10D_GLOO",
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GLIBCXX_USE_CXX11_ABI=<!(node ../../scripts/find-libtorch.mjs abi)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": [
        "-L<!(node ../../scripts/find-libtorch.mjs libdir)",
        "-Wl,--no-as-needed",
        "<!@(node ../../scripts/find-libtorch.mjs libs)",
        "-Wl,-rpath,<!(node ../../scripts/find-libtorch.mjs libdir)"
      ]
    }
  ]
}
