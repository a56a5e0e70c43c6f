"""Conversion: values <-> payloads, exceptions <-> failures, payload visiting, search attributes' payload form."""
