/* The epics view: a placeholder that registers nothing (i13-views replaces it). */
