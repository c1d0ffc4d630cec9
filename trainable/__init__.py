"""trainable"""
