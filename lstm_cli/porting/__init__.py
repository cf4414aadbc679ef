"""Tools for people porting an LSTM: golden vectors, and a check of a port (a Python
function or a results file) that names the likely bug."""
