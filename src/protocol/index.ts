/**
 * The protocol in one module: the frame codec, the message types, the parsers and the protocol-level errors.
 * Client code (client/) imports this module and nothing else of src/.
 */

export {
  BadHelloError,
  BadRequestError,
  ConnectionClosedError,
  FrameTooLargeError,
  ImgcacheError,
  IntegrityError,
  MalformedMessageError,
  ProtocolError,
  RejectedError,
  ServerError,
  type StreamDigest,
  TlsError,
  type TlsFailureCode,
  TruncatedFrameError,
  UnexpectedMessageError,
  UnknownCommandError,
} from '../errors.ts';
export * from './frame.ts';
export * from './messages.ts';
export * from './parse-message.ts';
export * from './usage-document.ts';
