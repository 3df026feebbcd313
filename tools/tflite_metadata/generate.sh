#!/bin/sh
# Regenerate vdg_tf/export/tflite_metadata/metadata_schema_py_generated.py from the official
# TFLite Model Metadata schema beside this script (tensorflow/tflite-support,
# tensorflow_lite_support/metadata/metadata_schema.fbs, commit below). Needs `flatc`
# (apt-get install flatbuffers-compiler); tests/export/test_tflite_metadata.py checks that the
# committed file is exactly what this prints.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../vdg_tf/export/tflite_metadata/metadata_schema_py_generated.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flatc --python --gen-object-api --gen-onefile -o "$tmp" "$here/metadata_schema.fbs" 2>/dev/null
{
  echo "# Generated file, do not edit: Python bindings (object API) of the TFLite Model Metadata schema."
  echo "# Schema: tensorflow/tflite-support tensorflow_lite_support/metadata/metadata_schema.fbs"
  echo "#   at commit dd3362ea685bb7ab1f7268c81ec567d3b720ae57, \"Schema Semantic version: 1.5.0\","
  echo "#   file_identifier \"M001\" (copy: tools/tflite_metadata/metadata_schema.fbs)."
  echo "# Command: flatc --python --gen-object-api --gen-onefile metadata_schema.fbs ($(flatc --version))"
  echo "# Runtime: the flatbuffers pip package (a TensorFlow dependency)."
  echo "# Regenerate with tools/tflite_metadata/generate.sh."
  echo "# fmt: off"
  echo "# ruff: noqa"
  printf "%s\n" "$(cat "$tmp/metadata_schema_generated.py")"  # no trailing blank lines
} > "$out"
