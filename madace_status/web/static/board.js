/* The board view: built in the next commit. */
