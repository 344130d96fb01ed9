"""What serving needs beside the model core: the handler, the model server, its batching, logging and faults."""
